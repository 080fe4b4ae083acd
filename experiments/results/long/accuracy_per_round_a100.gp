set terminal pngcairo size 1200,420 font ',10'
set grid
$r0 << EOD
16 74.4167
32 76.0667
48 85.1833
64 83.5
80 87.95
96 88.9333
112 90.0333
128 90.3167
144 91.05
160 91.0167
176 91.3
192 91.5
208 91.6
224 91.6
240 91.7667
EOD
$r1 << EOD
16 89.0333
32 90.3833
48 90.8
64 91.2167
80 91.4167
96 91.5333
112 91.35
128 92.05
144 91.8333
160 91.8
176 91.8667
192 91.8833
208 91.8
224 91.7833
240 91.4
EOD
$r2 << EOD
16 85.65
32 86.0167
48 88.4667
64 85.9667
80 90.0333
96 91.4333
112 91.7
128 91.8333
144 92.2833
160 92.6167
176 92.6333
192 92.7167
208 92.6
224 92.8667
240 92.9667
EOD
$r3 << EOD
16 88.95
32 90.2833
48 91.05
64 91.3833
80 91.7333
96 91.95
112 92.0167
128 91.7833
144 91.8
160 91.6667
176 91.8333
192 91.75
208 91.8
224 91.6333
240 91.7667
EOD
set output 'accuracy_per_round_a100.png'
set key bottom right inside font ',9'
set multiplot layout 1,2 title 'Validation accuracy per round, alpha 100 (mean over seeds)'
set xlabel 'round'
set ylabel 'validation accuracy (%)'
set title 'MinNet'
plot $r0 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#9400d3' title 'SuperFedNAS (n=1)', $r1 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#56b4e9' title 'iFedAvg (n=1)'
set title 'MaxNet'
unset key
plot $r2 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#9400d3' title 'SuperFedNAS (n=1)', $r3 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#56b4e9' title 'iFedAvg (n=1)'
unset multiplot
