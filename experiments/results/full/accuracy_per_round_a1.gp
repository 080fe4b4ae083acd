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
16 87.9
32 89.2167
48 90.0833
64 90.1333
80 90.8167
96 91.0167
112 90.95
120 91
EOD
$r4 << EOD
4 72.3
8 78.2333
12 80.2167
16 83.8
20 84.575
24 83.025
28 85.2167
30 84.35
EOD
$r5 << EOD
4 35.1333
8 52
12 67.1417
16 78.0583
20 81.2417
24 81.1417
28 84.2333
30 83.1583
EOD
$r6 << EOD
4 27.6333
8 46.9167
12 51.45
16 59.175
20 63.6833
24 70.425
28 68.7333
30 70.925
EOD
$r7 << EOD
4 72.7
8 79.1417
12 82.1333
16 85.2167
20 86.0083
24 84.7417
28 86.6667
30 86.3417
EOD
$r8 << EOD
4 46.4167
8 74.5083
12 78.875
16 83.625
20 85.1167
24 84.2417
28 86.5583
30 86.05
EOD
$r9 << EOD
4 17.0583
8 36.375
12 58.7583
16 65.9
20 75.2583
24 74.475
28 77.7917
30 78.125
EOD
$r10 << EOD
4 49.1278
8 61.7667
12 76.5778
16 82.1222
20 83.8278
24 84.2333
28 85.3722
30 85.1889
EOD
$r11 << EOD
4 79.1
8 85.4167
12 85.3833
16 88.25
20 89.4
24 88.2833
28 89.7167
30 89.7667
EOD
$r12 << EOD
16 71.1278
32 81.1889
48 85.9
64 87.3056
80 88.6944
96 88.8389
112 89.3167
120 89.5667
EOD
$r13 << EOD
4 76.7083
8 80.1667
12 83.8667
16 85.5417
20 86.7417
24 86.7167
28 87.3417
30 87.3083
EOD
$r14 << EOD
4 44.875
8 61.7417
12 76.3583
16 80.5333
20 84.275
24 84.2917
28 85.475
30 86.05
EOD
$r15 << EOD
4 44.9333
8 53.4417
12 63.5667
16 68.6417
20 73.1083
24 77.5333
28 75.425
30 75.275
EOD
$r16 << EOD
4 76.925
8 81.0083
12 83.8167
16 85.6833
20 86.5833
24 86.225
28 87.4667
30 86.775
EOD
$r17 << EOD
4 58.4167
8 78.2167
12 82.1333
16 84.025
20 85.2667
24 85.1917
28 86.3083
30 86.0833
EOD
$r18 << EOD
4 33.4917
8 47.5167
12 68.3167
16 75.0167
20 79.7833
24 79.5917
28 81.9583
30 81.6
EOD
$r19 << EOD
4 57.2611
8 65.1333
12 77.8389
16 83.0167
20 84.4056
24 84.8111
28 85.8833
30 85.6833
EOD
$r20 << EOD
4 78.0333
8 84.9833
12 85.05
16 87.8333
20 89.0333
24 88.5833
28 89.6667
30 89.4167
EOD
$r21 << EOD
16 72.6833
32 81.8778
48 86.0222
64 88.0722
80 89.5778
96 89.5722
112 89.7278
120 89.8667
EOD
$r22 << EOD
4 74.875
8 81.0167
12 84.4083
16 85.55
20 86.875
24 86.825
28 87.5917
30 87.3
EOD
$r23 << EOD
4 49.2
8 64.3833
12 76.3917
16 82.1667
20 84.7667
24 84.5417
28 86.0083
30 85.6417
EOD
$r24 << EOD
4 54.0833
8 56.4667
12 72.2833
16 72.1167
20 76.9333
24 80.5833
28 76.9583
30 77.325
EOD
$r25 << EOD
4 76.15
8 81.0833
12 84.15
16 85.75
20 86.7917
24 85.8333
28 87.2083
30 86.85
EOD
$r26 << EOD
4 61.5167
8 78.125
12 82.225
16 84
20 85.5417
24 85.6833
28 86.7083
30 86.375
EOD
$r27 << EOD
4 39.55
8 53.5
12 68.4417
16 77.0333
20 79.6
24 79.975
28 82.3583
30 82.475
EOD
$r28 << EOD
4 59.3111
8 68.3056
12 79.1667
16 84.0222
20 85.6333
24 85.6278
28 86.8111
30 86.9278
EOD
$r29 << EOD
4 76.8
8 81.7333
12 85.4611
16 87.15
20 87.7722
24 87.8556
28 88.4333
30 88.5444
EOD
$r30 << EOD
16 74.9333
32 82.0167
48 87.2611
64 88.5
80 90.0444
96 90.3611
112 90.3667
120 90.6333
EOD
$r31 << EOD
16 87.1167
32 89.6167
48 90.4667
64 90.3167
80 90.8167
96 91.3167
112 91.05
120 91.1167
EOD
$r32 << EOD
4 73.8583
8 80.4
12 84.1417
16 85.5417
20 86.825
24 86.675
28 87.45
30 86.95
EOD
$r33 << EOD
4 54.9583
8 68.625
12 78.4667
16 82.4917
20 85.8667
24 84.8833
28 86.6167
30 86.4417
EOD
$r34 << EOD
4 58.4083
8 58.15
12 74.8
16 74.9417
20 78.425
24 83.225
28 80.5583
30 81.2583
EOD
$r35 << EOD
4 75.95
8 81.0917
12 84.7167
16 86.1667
20 87.15
24 86.625
28 87.8083
30 87.8
EOD
$r36 << EOD
4 64.1
8 78.1417
12 82.4167
16 85.0667
20 86.275
24 85.7583
28 87.5167
30 87.0583
EOD
$r37 << EOD
4 45.9667
8 55.9167
12 71.9417
16 78.475
20 80.675
24 80.9583
28 83.025
30 83.075
EOD
set output 'accuracy_per_round_a1.png'
set key bottom right inside font ',9'
set multiplot layout 2,2 title 'Validation accuracy per round, alpha 1 (mean over seeds)'
set xlabel 'round'
set ylabel 'validation accuracy (%)'
set title 'MinNet'
plot $r0 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#9400d3' title 'SuperFedNAS (n=3)', $r1 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#56b4e9' title 'iFedAvg (n=3)', $r2 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#e69f00' title 'SuperFedNAS-4x (n=3)', $r3 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#009e73' title 'iFedAvg-4x (n=1)', $r4 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#d55e00' title 'RandomUniform (n=2)', $r5 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#0072b2' title 'Sandwich (n=2)', $r6 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#cc79a7' title 'ConstantBeta (n=2)', $r7 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#555555' title 'TrackingUniform (n=2)', $r8 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#999999' title 'SuperFedNAS-shortdecay (n=2)', $r9 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#9400d3' title 'SuperFedNAS-frozenBN (n=2)'
set title 'Mid1'
unset key
plot $r10 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#9400d3' title 'SuperFedNAS (n=3)', $r11 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#56b4e9' title 'iFedAvg (n=1)', $r12 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#e69f00' title 'SuperFedNAS-4x (n=3)', $r13 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#d55e00' title 'RandomUniform (n=2)', $r14 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#0072b2' title 'Sandwich (n=2)', $r15 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#cc79a7' title 'ConstantBeta (n=2)', $r16 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#555555' title 'TrackingUniform (n=2)', $r17 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#999999' title 'SuperFedNAS-shortdecay (n=2)', $r18 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#9400d3' title 'SuperFedNAS-frozenBN (n=2)'
set title 'Mid2'
unset key
plot $r19 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#9400d3' title 'SuperFedNAS (n=3)', $r20 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#56b4e9' title 'iFedAvg (n=1)', $r21 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#e69f00' title 'SuperFedNAS-4x (n=3)', $r22 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#d55e00' title 'RandomUniform (n=2)', $r23 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#0072b2' title 'Sandwich (n=2)', $r24 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#cc79a7' title 'ConstantBeta (n=2)', $r25 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#555555' title 'TrackingUniform (n=2)', $r26 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#999999' title 'SuperFedNAS-shortdecay (n=2)', $r27 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#9400d3' title 'SuperFedNAS-frozenBN (n=2)'
set title 'MaxNet'
unset key
plot $r28 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#9400d3' title 'SuperFedNAS (n=3)', $r29 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#56b4e9' title 'iFedAvg (n=3)', $r30 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#e69f00' title 'SuperFedNAS-4x (n=3)', $r31 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#009e73' title 'iFedAvg-4x (n=1)', $r32 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#d55e00' title 'RandomUniform (n=2)', $r33 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#0072b2' title 'Sandwich (n=2)', $r34 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#cc79a7' title 'ConstantBeta (n=2)', $r35 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#555555' title 'TrackingUniform (n=2)', $r36 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#999999' title 'SuperFedNAS-shortdecay (n=2)', $r37 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#9400d3' title 'SuperFedNAS-frozenBN (n=2)'
unset multiplot
