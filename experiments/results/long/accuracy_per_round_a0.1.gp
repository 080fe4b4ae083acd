set terminal pngcairo size 1200,420 font ',10'
set grid
$r0 << EOD
16 26.5583
32 33.3583
48 44.6583
64 55.5833
80 65.85
96 69.725
112 76.9667
128 81.6667
144 83.8833
160 84.1667
176 83.0167
192 82.8417
208 84.7083
224 84.4667
240 85.7583
EOD
$r1 << EOD
16 70.6417
32 81.0833
48 84.1083
64 83.975
80 85.5333
96 84.5083
112 86.1583
128 87.2583
144 88.3667
160 86.975
176 87.1
192 86.3833
208 88.5417
224 86.9083
240 88.95
EOD
$r2 << EOD
16 32.375
32 55.3833
48 71.5917
64 73.6083
80 78.4167
96 78.95
112 84.175
128 85.65
144 85.2667
160 85.0833
176 85.4667
192 84.3417
208 86.55
224 85.8167
240 87.6167
EOD
$r3 << EOD
32 38.4833
64 52.45
96 61.5167
128 69.1333
160 80.8667
192 77.7833
224 78.1
256 86.1833
288 84.45
320 86.5833
352 86.9667
384 85.0333
416 88.05
448 85.9833
480 88.1333
EOD
$r4 << EOD
32 84.9167
64 83.3333
96 88.3333
128 88.4667
160 86.3167
192 85.6667
224 87.4
256 87.9833
288 88.7833
320 88.5167
352 89.4667
384 86.6333
416 89.1667
448 88.0833
480 89.55
EOD
$r5 << EOD
16 62.95
32 75.9583
48 81.125
64 79.7667
80 82.3333
96 81.9833
112 85.725
128 86.4583
144 86.4
160 86.0083
176 86.3167
192 85.2167
208 86.9667
224 85.8
240 87.3583
EOD
$r6 << EOD
16 30.0083
32 39.6
48 55.6917
64 61.2833
80 66.9833
96 73.6583
112 82.25
128 84.1833
144 85.8333
160 85.7167
176 84.6417
192 83.5917
208 85.425
224 84.075
240 86.7
EOD
$r7 << EOD
16 63.025
32 79.3083
48 83.5833
64 83.675
80 85.6333
96 84.6083
112 87.3333
128 88.125
144 88.775
160 87.6333
176 87.5417
192 87.0583
208 88.7667
224 87.0333
240 88.6583
EOD
$r8 << EOD
16 36.425
32 57.6583
48 76.7583
64 78.3583
80 79.6917
96 79.1333
112 83.4333
128 85.2417
144 86.8833
160 86.3167
176 84.9
192 83.8
208 85.85
224 84.9667
240 87.3833
EOD
$r9 << EOD
32 48.85
64 60.2
96 69.7
128 66.7333
160 83.0833
192 80.9333
224 82.3833
256 87.1167
288 85.6
320 88.1167
352 89.2667
384 84.55
416 87.9333
448 88.1333
480 89.0167
EOD
$r10 << EOD
32 83.8833
64 82.6667
96 87.7333
128 89.0833
160 85.5333
192 85.2
224 87.5
256 88.4167
288 88.55
320 88.2833
352 89.1
384 86.9667
416 88.9
448 87.7833
480 89.35
EOD
$r11 << EOD
16 63
32 74.6417
48 79.4167
64 80.4833
80 82.7
96 80.7083
112 85.0417
128 86.475
144 88.0417
160 86.35
176 86.0917
192 85.25
208 86.825
224 85.7417
240 87.65
EOD
set output 'accuracy_per_round_a0.1.png'
set key bottom right inside font ',9'
set multiplot layout 1,2 title 'Validation accuracy per round, alpha 0.1 (mean over seeds)'
set xlabel 'round'
set ylabel 'validation accuracy (%)'
set title 'MinNet'
plot $r0 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#9400d3' title 'SuperFedNAS (n=2)', $r1 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#56b4e9' title 'iFedAvg (n=2)', $r2 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#e69f00' title 'SuperFedNAS-shortdecay (n=2)', $r3 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#009e73' title 'SuperFedNAS-480 (n=1)', $r4 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#d55e00' title 'iFedAvg-480 (n=1)', $r5 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#0072b2' title 'TrackingUniform (n=2)'
set title 'MaxNet'
unset key
plot $r6 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#9400d3' title 'SuperFedNAS (n=2)', $r7 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#56b4e9' title 'iFedAvg (n=2)', $r8 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#e69f00' title 'SuperFedNAS-shortdecay (n=2)', $r9 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#009e73' title 'SuperFedNAS-480 (n=1)', $r10 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#d55e00' title 'iFedAvg-480 (n=1)', $r11 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#0072b2' title 'TrackingUniform (n=2)'
unset multiplot
