set terminal pngcairo size 1200,840 font ',10'
set grid
$r0 << EOD
4 9.88333
8 18.75
12 33.5833
16 52.6667
20 60.9667
24 55.4333
28 62.1667
30 65.2833
EOD
$r1 << EOD
4 53.1167
8 59.4833
12 69.25
16 68.8333
20 79.2
24 73.1
28 83.2833
30 82.9
EOD
$r2 << EOD
16 30.2667
32 50.05
48 69.4833
64 74.8333
80 83.0667
96 82.95
112 83.2167
120 80.5333
EOD
$r3 << EOD
4 9.88333
8 20.4833
12 45.1333
16 57.6667
20 64.5167
24 55.4
28 66.2833
30 70.8833
EOD
$r4 << EOD
4 44.3833
8 54.65
12 67.35
16 68.9
20 78.9
24 74.6167
28 83.3667
30 82.5
EOD
$r5 << EOD
16 33.1167
32 53.9667
48 76.65
64 80.2333
80 83.1833
96 85.65
112 84.6833
120 81.0667
EOD
$r6 << EOD
4 9.88333
8 21.6833
12 51.3
16 57.3667
20 69.2333
24 57.6167
28 69.5333
30 71.3333
EOD
$r7 << EOD
4 44.65
8 55.9
12 65.8667
16 72.1333
20 80.5333
24 74.1167
28 84.0167
30 82.5333
EOD
$r8 << EOD
16 36.0167
32 52.4167
48 74.1833
64 80.4833
80 82.6833
96 85.4833
112 84.9
120 79.4167
EOD
$r9 << EOD
4 10.05
8 30.4667
12 57.45
16 59
20 74.6833
24 61.55
28 76.85
30 77.35
EOD
$r10 << EOD
4 43.4833
8 50.5333
12 62.9667
16 64.3
20 76.85
24 75.2667
28 83.6833
30 81.8167
EOD
$r11 << EOD
16 36.85
32 55.8333
48 78.5667
64 79.8167
80 83.5167
96 84.4333
112 85.0667
120 80.2167
EOD
set output 'accuracy_per_round_a0.1.png'
set key bottom right inside font ',9'
set multiplot layout 2,2 title 'Validation accuracy per round, alpha 0.1 (mean over seeds)'
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
