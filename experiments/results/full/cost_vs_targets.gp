set terminal pngcairo size 1100,520 font ',11'
set grid
set key outside right top
$c0 << EOD
1 3.73017 0.791162
2 3.73017 0.791162
3 3.73017 0.791162
4 3.73017 0.791162
5 3.73017 0.791162
6 3.73017 0.791162
7 3.73017 0.791162
8 3.73017 0.791162
9 3.73017 0.791162
10 3.73017 0.791162
11 3.73017 0.791162
12 3.73017 0.791162
13 3.73017 0.791162
14 3.73017 0.791162
15 3.73017 0.791162
16 3.73017 0.791162
17 3.73017 0.791162
18 3.73017 0.791162
19 3.73017 0.791162
20 3.73017 0.791162
EOD
$c1 << EOD
3 9.81121 0.791162
20 19.4537 0.791162
EOD
$c2 << EOD
1 4.04639 0.866288
2 8.09277 1.73258
3 12.1392 2.59887
4 16.1855 3.46515
5 20.2319 4.33144
6 24.2783 5.19773
7 28.3247 6.06402
8 32.3711 6.93031
9 36.4175 7.7966
10 40.4639 8.66288
11 44.5103 9.52917
12 48.5566 10.3955
13 52.603 11.2617
14 56.6494 12.128
15 60.6958 12.9943
16 64.7422 13.8606
17 68.7886 14.7269
18 72.835 15.5932
19 76.8814 16.4595
20 80.9277 17.3258
EOD
$c3 << EOD
4 16.1765 3.46515
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
