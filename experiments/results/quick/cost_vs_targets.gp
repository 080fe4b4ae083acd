set terminal pngcairo size 1100,520 font ',11'
set grid
set key outside right top
$c0 << EOD
1 0.638673 0.264406
2 0.638673 0.264406
3 0.638673 0.264406
4 0.638673 0.264406
5 0.638673 0.264406
6 0.638673 0.264406
7 0.638673 0.264406
8 0.638673 0.264406
9 0.638673 0.264406
10 0.638673 0.264406
11 0.638673 0.264406
12 0.638673 0.264406
13 0.638673 0.264406
14 0.638673 0.264406
15 0.638673 0.264406
16 0.638673 0.264406
17 0.638673 0.264406
18 0.638673 0.264406
19 0.638673 0.264406
20 0.638673 0.264406
EOD
$c1 << EOD
3 0.790925 0.264406
20 0.962557 0.264406
EOD
$c2 << EOD
1 0.683818 0.282813
2 1.36764 0.565626
3 2.05145 0.848439
4 2.73527 1.13125
5 3.41909 1.41407
6 4.10291 1.69688
7 4.78673 1.97969
8 5.47055 2.2625
9 6.15436 2.54532
10 6.83818 2.82813
11 7.522 3.11094
12 8.20582 3.39376
13 8.88964 3.67657
14 9.57345 3.95938
15 10.2573 4.2422
16 10.9411 4.52501
17 11.6249 4.80782
18 12.3087 5.09063
19 12.9925 5.37345
20 13.6764 5.65626
EOD
$c3 << EOD
4 2.73527 1.13125
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
