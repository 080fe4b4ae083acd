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
16 83.4944
32 86.9444
48 87.8167
64 89.0556
80 89.7833
96 89.7222
112 90.1056
128 90.2167
144 90.7167
160 90.55
176 90.6444
192 90.4944
208 90.6111
224 90.4278
240 90.5889
EOD
$r3 << EOD
16 83.1278
32 86.3111
48 87.4611
64 88.5
80 88.9833
96 89.1611
112 89.6167
128 89.7722
144 90.1833
160 90.1944
176 90.1333
192 90.2333
208 89.9389
224 90.2333
240 90.2278
EOD
$r4 << EOD
16 50.7444
32 69.3
48 76.3667
64 80.5278
80 84.3222
96 86.3667
112 88.1444
128 88.1611
144 89.4389
160 89.55
176 89.5333
192 90.15
208 90.0889
224 90.1167
240 90.5389
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
16 85.6333
32 87.8611
48 88.9944
64 89.4
80 90.5389
96 90.5444
112 90.6278
128 91.0333
144 91.1833
160 91.3222
176 91.3111
192 91.4222
208 91.0444
224 91.25
240 91.5278
EOD
$r8 << EOD
16 85.5056
32 87.8333
48 88.85
64 89.6
80 90.0611
96 90.5389
112 90.8722
128 91.1833
144 91.2389
160 91.3167
176 91.2167
192 91.25
208 91.1778
224 91.4167
240 91.4167
EOD
$r9 << EOD
16 64.2222
32 78.0778
48 82.9167
64 84.5556
80 86.2944
96 87.85
112 89.0944
128 89.6056
144 90.7611
160 90.8444
176 90.9
192 91.1722
208 91.3
224 91.5056
240 91.5833
EOD
set output 'accuracy_per_round_a1.png'
set key bottom right inside font ',9'
set multiplot layout 1,2 title 'Validation accuracy per round, alpha 1 (mean over seeds)'
set xlabel 'round'
set ylabel 'validation accuracy (%)'
set title 'MinNet'
plot $r0 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#9400d3' title 'SuperFedNAS (n=3)', $r1 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#56b4e9' title 'iFedAvg (n=3)', $r2 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#0072b2' title 'TrackingUniform (n=3)', $r3 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#cc79a7' title 'RandomUniform (n=3)', $r4 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#555555' title 'Sandwich (n=3)'
set title 'MaxNet'
unset key
plot $r5 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#9400d3' title 'SuperFedNAS (n=3)', $r6 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#56b4e9' title 'iFedAvg (n=3)', $r7 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#0072b2' title 'TrackingUniform (n=3)', $r8 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#cc79a7' title 'RandomUniform (n=3)', $r9 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#555555' title 'Sandwich (n=3)'
unset multiplot
