set terminal pngcairo size 1200,840 font ',10'
set grid
$r0 << EOD
4 20.4278
8 43.65
10 59.4333
EOD
$r1 << EOD
4 53.5611
8 69.1611
10 69.3611
EOD
$r2 << EOD
4 36.95
8 71.2167
10 59.3833
EOD
$r3 << EOD
4 16.5167
8 43.2167
10 55.5167
EOD
$r4 << EOD
4 22.5333
8 25.2167
10 45.1667
EOD
$r5 << EOD
4 27.6889
8 48.1556
10 61.6778
EOD
$r6 << EOD
4 50.9944
8 69.6556
10 70.7556
EOD
$r7 << EOD
4 50.8
8 70
10 71.8
EOD
$r8 << EOD
4 19.3
8 46.9167
10 62.2
EOD
$r9 << EOD
4 15.85
8 31.45
10 46.4
EOD
$r10 << EOD
4 22.8222
8 49.0333
10 62.0667
EOD
$r11 << EOD
4 51.4
8 68.6333
10 72.3222
EOD
$r12 << EOD
4 50
8 71
10 72.7
EOD
$r13 << EOD
4 19.3833
8 53.05
10 63.2333
EOD
$r14 << EOD
4 18.6
8 32.5333
10 46.8167
EOD
$r15 << EOD
4 25.6389
8 49.0889
10 60.4833
EOD
$r16 << EOD
4 43.6889
8 62.3667
10 70.75
EOD
$r17 << EOD
4 54.2833
8 70.3667
10 70.75
EOD
$r18 << EOD
4 19.5667
8 52.7167
10 62.5667
EOD
$r19 << EOD
4 11.0333
8 32.7333
10 44.5167
EOD
set output 'accuracy_per_round_a1.png'
set key bottom right inside font ',9'
set multiplot layout 2,2 title 'Validation accuracy per round, alpha 1 (mean over seeds)'
set xlabel 'round'
set ylabel 'validation accuracy (%)'
set xtics 1
set title 'MinNet'
plot $r0 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#9400d3' title 'SuperFedNAS', $r1 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#56b4e9' title 'iFedAvg', $r2 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#e69f00' title 'RandomUniform', $r3 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#009e73' title 'Sandwich', $r4 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#d55e00' title 'ConstantBeta'
set title 'Mid1'
unset key
plot $r5 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#9400d3' title 'SuperFedNAS', $r6 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#56b4e9' title 'iFedAvg', $r7 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#e69f00' title 'RandomUniform', $r8 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#009e73' title 'Sandwich', $r9 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#d55e00' title 'ConstantBeta'
set title 'Mid2'
unset key
plot $r10 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#9400d3' title 'SuperFedNAS', $r11 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#56b4e9' title 'iFedAvg', $r12 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#e69f00' title 'RandomUniform', $r13 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#009e73' title 'Sandwich', $r14 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#d55e00' title 'ConstantBeta'
set title 'MaxNet'
unset key
plot $r15 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#9400d3' title 'SuperFedNAS', $r16 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#56b4e9' title 'iFedAvg', $r17 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#e69f00' title 'RandomUniform', $r18 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#009e73' title 'Sandwich', $r19 using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '#d55e00' title 'ConstantBeta'
unset multiplot
