set terminal pngcairo size 1200,840 font ',10'
set grid
$r0 << EOD
4 25.1167
8 46.5
12 69.8167
16 80.8833
20 84.3
24 83.1333
28 85.8833
30 85.4667
EOD
$r1 << EOD
4 82.1833
8 86.2333
12 86.7167
16 88.3
20 88.9833
24 88.7833
28 89.3333
30 89.5833
EOD
$r2 << EOD
4 44.5167
8 50.2
12 75.35
16 82.9833
20 85.2333
24 85.2333
28 86.3333
30 86.5
EOD
$r3 << EOD
4 79.1
8 85.4167
12 85.3833
16 88.25
20 89.4
24 88.2833
28 89.7167
30 89.7667
EOD
$r4 << EOD
4 58.9667
8 53.5167
12 76.5333
16 83.0167
20 85.9167
24 85.7667
28 86.1333
30 86.6333
EOD
$r5 << EOD
4 78.0333
8 84.9833
12 85.05
16 87.8333
20 89.0333
24 88.5833
28 89.6667
30 89.4167
EOD
$r6 << EOD
4 59.3
8 56.9
12 79.1333
16 84.6167
20 86.3
24 86.4167
28 87.3667
30 87.55
EOD
set output 'accuracy_per_round_a1.png'
set key bottom right inside font ',9'
set multiplot layout 2,2 title 'Validation accuracy per round, alpha 1 (mean over seeds)'
set xlabel 'round'
set ylabel 'validation accuracy (%)'
set title 'MinNet'
plot $r0 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#9400d3' title 'SuperFedNAS (n=1)', $r1 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#56b4e9' title 'iFedAvg (n=1)'
set title 'Mid1'
unset key
plot $r2 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#9400d3' title 'SuperFedNAS (n=1)', $r3 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#56b4e9' title 'iFedAvg (n=1)'
set title 'Mid2'
unset key
plot $r4 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#9400d3' title 'SuperFedNAS (n=1)', $r5 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#56b4e9' title 'iFedAvg (n=1)'
set title 'MaxNet'
unset key
plot $r6 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#9400d3' title 'SuperFedNAS (n=1)'
unset multiplot
