set terminal pngcairo size 1200,840 font ',10'
set grid
$r0 << EOD
4 34.35
8 52.4167
12 68.6333
16 78.7722
20 81.5667
24 81.1889
28 84.3778
30 83.7444
EOD
$r1 << EOD
4 81.5333
8 83.8833
12 86.2056
16 87.1722
20 88.1778
24 88.0667
28 88.5778
30 88.6222
EOD
$r2 << EOD
16 59.1
32 74.2556
48 83.8222
64 86.6778
80 88.2056
96 88.7889
112 89.1389
120 89.2778
EOD
$r3 << EOD
4 74.8667
8 79.2333
12 79.3333
16 83.65
20 84.55
24 83.15
28 85.3833
30 84.5667
EOD
$r4 << EOD
4 42.8
8 63.1667
12 68.9
16 79.45
20 82.2833
24 82.9333
28 85.6333
30 84.9167
EOD
$r5 << EOD
4 25.6833
8 35.6
12 64.8667
16 58.4833
20 69.8
24 70.45
28 68.7167
30 71.1667
EOD
$r6 << EOD
4 16.0333
8 30.15
12 61.3
16 66.4833
20 76.9667
24 77.0667
28 78.2333
30 79.6833
EOD
$r7 << EOD
4 49.1278
8 61.7667
12 76.5778
16 82.1222
20 83.8278
24 84.2333
28 85.3722
30 85.1889
EOD
$r8 << EOD
4 79.1
8 85.4167
12 85.3833
16 88.25
20 89.4
24 88.2833
28 89.7167
30 89.7667
EOD
$r9 << EOD
16 71.1278
32 81.1889
48 85.9
64 87.3056
80 88.6944
96 88.8389
112 89.3167
120 89.5667
EOD
$r10 << EOD
4 76.4667
8 81.65
12 82.7833
16 85.8
20 86.9667
24 87.1333
28 87.1
30 88.15
EOD
$r11 << EOD
4 48.8
8 67.1333
12 78.3
16 80.25
20 85.7833
24 86.0667
28 85.75
30 87.4
EOD
$r12 << EOD
4 47.05
8 43.6167
12 70.4167
16 66.75
20 74.9833
24 76.8167
28 75.6
30 71.0333
EOD
$r13 << EOD
4 34.15
8 40.35
12 63.85
16 75.4167
20 79.65
24 80.2667
28 81.7167
30 82.1833
EOD
$r14 << EOD
4 57.2611
8 65.1333
12 77.8389
16 83.0167
20 84.4056
24 84.8111
28 85.8833
30 85.6833
EOD
$r15 << EOD
4 78.0333
8 84.9833
12 85.05
16 87.8333
20 89.0333
24 88.5833
28 89.6667
30 89.4167
EOD
$r16 << EOD
16 72.6833
32 81.8778
48 86.0222
64 88.0722
80 89.5778
96 89.5722
112 89.7278
120 89.8667
EOD
$r17 << EOD
4 75.7
8 81.6833
12 83.1833
16 85.6667
20 87.1833
24 87.3167
28 87.6667
30 88.0667
EOD
$r18 << EOD
4 53.75
8 69.5333
12 78.7667
16 82.3333
20 86.4333
24 86.95
28 86.6667
30 87.4667
EOD
$r19 << EOD
4 59.6167
8 47
12 74.3167
16 70.2667
20 79.0833
24 80.85
28 78.8333
30 73.6833
EOD
$r20 << EOD
4 42.6333
8 48.4667
12 63.9833
16 77.2167
20 79.6333
24 80.8833
28 82.0333
30 82.85
EOD
$r21 << EOD
4 59.3111
8 68.3056
12 79.1667
16 84.0222
20 85.6333
24 85.6278
28 86.8111
30 86.9278
EOD
$r22 << EOD
4 76.8
8 81.7333
12 85.4611
16 87.15
20 87.7722
24 87.8556
28 88.4333
30 88.5444
EOD
$r23 << EOD
16 74.9333
32 82.0167
48 87.2611
64 88.5
80 90.0444
96 90.3611
112 90.3667
120 90.6333
EOD
$r24 << EOD
4 72
8 81.5833
12 83.15
16 85.6
20 87.15
24 87
28 87.0833
30 87.65
EOD
$r25 << EOD
4 60.9167
8 75.2667
12 80.1667
16 83.0167
20 87.25
24 87.0833
28 87.2
30 87.65
EOD
$r26 << EOD
4 62.7167
8 47.6
12 76.05
16 75.3167
20 82.7
24 84.7333
28 84.4333
30 79.4333
EOD
$r27 << EOD
4 46.6667
8 54.65
12 65.9167
16 77.9167
20 80.75
24 81.7667
28 82.8333
30 83.3
EOD
set output 'accuracy_per_round_a1.png'
set key bottom right inside font ',9'
set multiplot layout 2,2 title 'Validation accuracy per round, alpha 1 (mean over seeds)'
set xlabel 'round'
set ylabel 'validation accuracy (%)'
set title 'MinNet'
plot $r0 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#9400d3' title 'SuperFedNAS (n=3)', $r1 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#56b4e9' title 'iFedAvg (n=3)', $r2 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#e69f00' title 'SuperFedNAS-4x (n=3)', $r3 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#009e73' title 'RandomUniform (n=1)', $r4 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#d55e00' title 'Sandwich (n=1)', $r5 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#0072b2' title 'ConstantBeta (n=1)', $r6 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#cc79a7' title 'SuperFedNAS-frozenBN (n=1)'
set title 'Mid1'
unset key
plot $r7 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#9400d3' title 'SuperFedNAS (n=3)', $r8 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#56b4e9' title 'iFedAvg (n=1)', $r9 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#e69f00' title 'SuperFedNAS-4x (n=3)', $r10 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#009e73' title 'RandomUniform (n=1)', $r11 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#d55e00' title 'Sandwich (n=1)', $r12 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#0072b2' title 'ConstantBeta (n=1)', $r13 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#cc79a7' title 'SuperFedNAS-frozenBN (n=1)'
set title 'Mid2'
unset key
plot $r14 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#9400d3' title 'SuperFedNAS (n=3)', $r15 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#56b4e9' title 'iFedAvg (n=1)', $r16 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#e69f00' title 'SuperFedNAS-4x (n=3)', $r17 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#009e73' title 'RandomUniform (n=1)', $r18 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#d55e00' title 'Sandwich (n=1)', $r19 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#0072b2' title 'ConstantBeta (n=1)', $r20 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#cc79a7' title 'SuperFedNAS-frozenBN (n=1)'
set title 'MaxNet'
unset key
plot $r21 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#9400d3' title 'SuperFedNAS (n=3)', $r22 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#56b4e9' title 'iFedAvg (n=3)', $r23 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#e69f00' title 'SuperFedNAS-4x (n=3)', $r24 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#009e73' title 'RandomUniform (n=1)', $r25 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#d55e00' title 'Sandwich (n=1)', $r26 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#0072b2' title 'ConstantBeta (n=1)', $r27 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#cc79a7' title 'SuperFedNAS-frozenBN (n=1)'
unset multiplot
