set terminal pngcairo size 1200,420 font ',10'
set grid
$r0 << EOD
16 29.6833
32 37.9667
48 59.6333
64 60.25
80 70.0167
96 77.9
112 81.6
128 82.0667
144 85.6
160 84.8333
176 86
192 83
208 85.8333
224 85.6333
240 86.75
EOD
$r1 << EOD
16 65.95
32 84.3167
48 84.55
64 83.9333
80 87
96 87.9833
112 87.9167
128 87.95
144 88.7
160 85.9
176 88.8833
192 86.4167
208 88.0833
224 86.7833
240 88.9667
EOD
$r2 << EOD
16 60.0333
32 81.0167
48 82.0167
64 80.9167
80 86
96 86.5167
112 86.95
128 87.3667
144 87.3
160 85.0833
176 88.45
192 84.5667
208 87.2667
224 86.2667
240 87.6
EOD
$r3 << EOD
16 35.3833
32 47.2167
48 64.15
64 62.2667
80 74.5833
96 83.5833
112 84.5667
128 83.6333
144 87.0167
160 87
176 88.15
192 83.8333
208 85.5
224 86.8167
240 87.2667
EOD
$r4 << EOD
16 59.1833
32 84.6167
48 83.4833
64 83.4833
80 87.6
96 88.3667
112 88.8167
128 88.8333
144 89.0333
160 86.6667
176 89.5833
192 86.3167
208 88.9333
224 87.55
240 88.5
EOD
$r5 << EOD
16 58.5167
32 79.5333
48 80.2833
64 81.9667
80 86.6667
96 86.4833
112 87.8167
128 87.7167
144 89.0833
160 86.0833
176 89.1
192 85.0333
208 85.9833
224 87.35
240 87.5667
EOD
set output 'accuracy_per_round_a0.1.png'
set key bottom right inside font ',9'
set multiplot layout 1,2 title 'Validation accuracy per round, alpha 0.1 (mean over seeds)'
set xlabel 'round'
set ylabel 'validation accuracy (%)'
set title 'MinNet'
plot $r0 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#9400d3' title 'SuperFedNAS (n=1)', $r1 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#56b4e9' title 'iFedAvg (n=1)', $r2 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#e69f00' title 'TrackingUniform (n=1)'
set title 'MaxNet'
unset key
plot $r3 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#9400d3' title 'SuperFedNAS (n=1)', $r4 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#56b4e9' title 'iFedAvg (n=1)', $r5 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#e69f00' title 'TrackingUniform (n=1)'
unset multiplot
