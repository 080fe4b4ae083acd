set terminal pngcairo size 1200,840 font ',10'
set grid
$r0 << EOD
4 38.85
8 57.7833
12 76.0667
16 82.0333
20 83.4
24 84.5
28 85.2833
30 85.5
EOD
$r1 << EOD
4 84.2
8 87.3
12 88.2667
16 89.1333
20 89.5833
24 89.8
28 90.0833
30 90.1667
EOD
$r2 << EOD
16 78.2
32 81.7
48 87.2667
64 88.4833
80 88.9333
96 89.7333
112 89.8167
120 89.8
EOD
$r3 << EOD
4 58.1333
8 67.95
12 81.2333
16 84.9167
20 86.3167
24 86.4333
28 87.1833
30 87.3167
EOD
$r4 << EOD
4 81.5667
8 86.1333
12 88.1
16 89.1
20 89.4833
24 89.8667
28 90.1667
30 90.1667
EOD
$r5 << EOD
16 81.5333
32 85.4667
48 88.2667
64 89.2333
80 90.2833
96 90.6833
112 90.9333
120 90.9167
EOD
$r6 << EOD
4 64.8333
8 71.3667
12 83.1833
16 86.0167
20 87.4167
24 87.5
28 87.6167
30 87.75
EOD
$r7 << EOD
4 81
8 86.55
12 88.6333
16 89.35
20 90.2333
24 89.8333
28 90.1
30 90.3333
EOD
$r8 << EOD
16 83.8667
32 85.9667
48 89.2833
64 89.9333
80 90.8
96 91.05
112 91.1
120 91.0333
EOD
$r9 << EOD
4 70.4833
8 77.3333
12 83.8833
16 86.8833
20 87.9167
24 88.55
28 88.5667
30 88.6833
EOD
$r10 << EOD
4 78.1333
8 85.2667
12 88.25
16 89.1167
20 89.75
24 89.9833
28 89.6333
30 90.15
EOD
$r11 << EOD
16 85.0167
32 87.1167
48 90.0667
64 90.7167
80 91.7
96 91.8667
112 91.75
120 91.8333
EOD
set output 'accuracy_per_round_a100.png'
set key bottom right inside font ',9'
set multiplot layout 2,2 title 'Validation accuracy per round, alpha 100 (mean over seeds)'
set xlabel 'round'
set ylabel 'validation accuracy (%)'
set title 'MinNet'
plot $r0 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#9400d3' title 'SuperFedNAS (n=1)', $r1 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#56b4e9' title 'iFedAvg (n=1)', $r2 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#e69f00' title 'SuperFedNAS-4x (n=1)'
set title 'Mid1'
unset key
plot $r3 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#9400d3' title 'SuperFedNAS (n=1)', $r4 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#56b4e9' title 'iFedAvg (n=1)', $r5 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#e69f00' title 'SuperFedNAS-4x (n=1)'
set title 'Mid2'
unset key
plot $r6 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#9400d3' title 'SuperFedNAS (n=1)', $r7 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#56b4e9' title 'iFedAvg (n=1)', $r8 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#e69f00' title 'SuperFedNAS-4x (n=1)'
set title 'MaxNet'
unset key
plot $r9 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#9400d3' title 'SuperFedNAS (n=1)', $r10 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#56b4e9' title 'iFedAvg (n=1)', $r11 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#e69f00' title 'SuperFedNAS-4x (n=1)'
unset multiplot
