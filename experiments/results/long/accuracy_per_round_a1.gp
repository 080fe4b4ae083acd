set terminal pngcairo size 1200,420 font ',10'
set grid
$r0 << EOD
16 54.35
32 69.1056
48 79.5
64 84
80 86.95
96 85.8056
112 88.3778
128 88.3722
144 89.7333
160 90.0944
176 90.0556
192 89.95
208 90.1278
224 90.3833
240 90.5056
EOD
$r1 << EOD
16 86.75
32 88.6
48 89.3556
64 90.2278
80 90.6611
96 90.6833
112 90.8111
128 90.8778
144 91.2722
160 91.2333
176 91.1722
192 91.3389
208 91.1167
224 91.1056
240 91.1222
EOD
$r2 << EOD
16 85.025
32 86.9
48 87.5833
64 89.0083
80 90.2333
96 89.8167
112 90.3
128 90.5333
144 90.7833
160 90.6667
176 90.8833
192 90.75
208 90.775
224 90.35
240 90.6917
EOD
$r3 << EOD
16 84.7417
32 85.975
48 87.525
64 88.525
80 89.525
96 89.225
112 89.6333
128 90.3167
144 90.2667
160 90.375
176 90.3833
192 90.2833
208 89.9
224 90.3833
240 90.4083
EOD
$r4 << EOD
16 48.9417
32 68.9417
48 73.6583
64 81.075
80 86.0917
96 85.7333
112 88.5083
128 88.7083
144 89.7083
160 89.725
176 90.2917
192 90.4833
208 90.1333
224 90.225
240 90.6333
EOD
$r5 << EOD
16 73.4
32 79.7611
48 84.4222
64 85.9667
80 87.8389
96 85.8333
112 88.7444
128 89.9556
144 91.6
160 91.2611
176 91.4667
192 91.6444
208 91.1222
224 91.4556
240 91.7889
EOD
$r6 << EOD
16 86.2667
32 88.7278
48 89.4778
64 90.1722
80 90.7444
96 90.8056
112 90.9111
128 91.1889
144 91.2611
160 91.3222
176 91.0056
192 91.1056
208 91.0389
224 90.9889
240 91
EOD
$r7 << EOD
16 86.125
32 88.15
48 88.975
64 89.3167
80 90.7083
96 90.7417
112 90.8583
128 91.3667
144 91.2583
160 91.3167
176 91.35
192 91.35
208 90.8917
224 91.0667
240 91.4667
EOD
$r8 << EOD
16 86.15
32 87.8667
48 88.8083
64 89.5
80 90.3833
96 90.7667
112 91.175
128 91.525
144 91.3333
160 91.3583
176 91.425
192 91.375
208 91.1583
224 91.4583
240 91.5
EOD
$r9 << EOD
16 59.5417
32 78.7417
48 81.75
64 84.0667
80 87.7083
96 87.1333
112 89.5083
128 89.8917
144 90.9167
160 91.1333
176 91.2083
192 91.1917
208 91.275
224 91.675
240 91.6833
EOD
set output 'accuracy_per_round_a1.png'
set key bottom right inside font ',9'
set multiplot layout 1,2 title 'Validation accuracy per round, alpha 1 (mean over seeds)'
set xlabel 'round'
set ylabel 'validation accuracy (%)'
set title 'MinNet'
plot $r0 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#9400d3' title 'SuperFedNAS (n=3)', $r1 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#56b4e9' title 'iFedAvg (n=3)', $r2 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#0072b2' title 'TrackingUniform (n=2)', $r3 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#cc79a7' title 'RandomUniform (n=2)', $r4 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#555555' title 'Sandwich (n=2)'
set title 'MaxNet'
unset key
plot $r5 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#9400d3' title 'SuperFedNAS (n=3)', $r6 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#56b4e9' title 'iFedAvg (n=3)', $r7 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#0072b2' title 'TrackingUniform (n=2)', $r8 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#cc79a7' title 'RandomUniform (n=2)', $r9 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#555555' title 'Sandwich (n=2)'
unset multiplot
