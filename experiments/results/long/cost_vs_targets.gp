set terminal pngcairo size 1100,520 font ',11'
set grid
set key outside right top
$c0 << EOD
1 29.6202 6.31129
2 29.6202 6.31129
3 29.6202 6.31129
4 29.6202 6.31129
5 29.6202 6.31129
6 29.6202 6.31129
7 29.6202 6.31129
8 29.6202 6.31129
9 29.6202 6.31129
10 29.6202 6.31129
11 29.6202 6.31129
12 29.6202 6.31129
13 29.6202 6.31129
14 29.6202 6.31129
15 29.6202 6.31129
16 29.6202 6.31129
17 29.6202 6.31129
18 29.6202 6.31129
19 29.6202 6.31129
20 29.6202 6.31129
EOD
$c1 << EOD
3 34.1636 6.31129
EOD
$c2 << EOD
1 34.0698 7.21619
2 68.1395 14.4324
3 102.209 21.6486
4 136.279 28.8647
5 170.349 36.0809
6 204.419 43.2971
7 238.488 50.5133
8 272.558 57.7295
9 306.628 64.9457
10 340.698 72.1619
11 374.767 79.378
12 408.837 86.5942
13 442.907 93.8104
14 476.977 101.027
15 511.046 108.243
16 545.116 115.459
17 579.186 122.675
18 613.256 129.891
19 647.326 137.108
20 681.395 144.324
EOD
$c3 << EOD
2 68.1395 14.4324
EOD
set output 'cost_vs_targets.png'
set key top left inside font ',10'
set multiplot layout 1,2 title 'Cost of serving N deployment targets (alpha 1)'
set xlabel 'number of targets N'
set ylabel 'training TMACs (clients; + server search)'
set yrange [0:*]
set xrange [0:21]
plot $c0 using 1:2 with lines lw 3 lc rgb '#9400d3' title 'SuperFedNAS: one training', $c1 using 1:2 with linespoints lw 2 dt 2 pt 5 ps 1.5 lc rgb '#009e73' title 'SuperFedNAS: training + search', $c2 using 1:2 with linespoints lw 2 pt 7 lc rgb '#56b4e9' title 'iFedAvg: N x mean run', $c3 using 1:2 with points pt 9 ps 2.5 lc rgb '#e69f00' title 'iFedAvg: sum of measured runs'
set ylabel 'GB communicated (down + up)'
plot $c0 using 1:3 with lines lw 3 lc rgb '#9400d3' notitle, $c2 using 1:3 with linespoints lw 2 pt 7 lc rgb '#56b4e9' notitle, $c3 using 1:3 with points pt 9 ps 2.5 lc rgb '#e69f00' notitle
unset multiplot
