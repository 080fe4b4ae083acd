set terminal pngcairo size 1100,520 font ',11'
set grid
set key outside right top
$c0 << EOD
1 29.6676 6.31355
2 29.6676 6.31355
3 29.6676 6.31355
4 29.6676 6.31355
5 29.6676 6.31355
6 29.6676 6.31355
7 29.6676 6.31355
8 29.6676 6.31355
9 29.6676 6.31355
10 29.6676 6.31355
11 29.6676 6.31355
12 29.6676 6.31355
13 29.6676 6.31355
14 29.6676 6.31355
15 29.6676 6.31355
16 29.6676 6.31355
17 29.6676 6.31355
18 29.6676 6.31355
19 29.6676 6.31355
20 29.6676 6.31355
EOD
$c2 << EOD
1 34.0484 7.21619
2 68.0967 14.4324
3 102.145 21.6486
4 136.193 28.8647
5 170.242 36.0809
6 204.29 43.2971
7 238.339 50.5133
8 272.387 57.7295
9 306.435 64.9457
10 340.484 72.1619
11 374.532 79.378
12 408.58 86.5942
13 442.629 93.8104
14 476.677 101.027
15 510.726 108.243
16 544.774 115.459
17 578.822 122.675
18 612.871 129.891
19 646.919 137.108
20 680.967 144.324
EOD
$c3 << EOD
2 68.0896 14.4324
EOD
set output 'cost_vs_targets.png'
set key top left inside font ',10'
set multiplot layout 1,2 title 'Cost of serving N deployment targets (alpha 1)'
set xlabel 'number of targets N'
set ylabel 'training TMACs (clients; + server search)'
set yrange [0:*]
set xrange [0:21]
plot $c0 using 1:2 with lines lw 3 lc rgb '#9400d3' title 'SuperFedNAS: one training', $c2 using 1:2 with linespoints lw 2 pt 7 lc rgb '#56b4e9' title 'iFedAvg: N x mean run', $c3 using 1:2 with points pt 9 ps 2.5 lc rgb '#e69f00' title 'iFedAvg: sum of measured runs'
set ylabel 'GB communicated (down + up)'
plot $c0 using 1:3 with lines lw 3 lc rgb '#9400d3' notitle, $c2 using 1:3 with linespoints lw 2 pt 7 lc rgb '#56b4e9' notitle, $c3 using 1:3 with points pt 9 ps 2.5 lc rgb '#e69f00' notitle
unset multiplot
