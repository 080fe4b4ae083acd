set terminal pngcairo size 1100,520 font ',11'
set grid
set key outside right top
$c0 << EOD
1 3.7601 0.793238
2 3.7601 0.793238
3 3.7601 0.793238
4 3.7601 0.793238
5 3.7601 0.793238
6 3.7601 0.793238
7 3.7601 0.793238
8 3.7601 0.793238
9 3.7601 0.793238
10 3.7601 0.793238
11 3.7601 0.793238
12 3.7601 0.793238
13 3.7601 0.793238
14 3.7601 0.793238
15 3.7601 0.793238
16 3.7601 0.793238
17 3.7601 0.793238
18 3.7601 0.793238
19 3.7601 0.793238
20 3.7601 0.793238
EOD
$c1 << EOD
3 8.88171 0.793238
20 19.4836 0.793238
EOD
$c2 << EOD
1 4.04412 0.866288
2 8.08824 1.73258
3 12.1324 2.59887
4 16.1765 3.46515
5 20.2206 4.33144
6 24.2647 5.19773
7 28.3088 6.06402
8 32.3529 6.93031
9 36.3971 7.7966
10 40.4412 8.66288
11 44.4853 9.52917
12 48.5294 10.3955
13 52.5735 11.2617
14 56.6176 12.128
15 60.6618 12.9943
16 64.7059 13.8606
17 68.75 14.7269
18 72.7941 15.5932
19 76.8382 16.4595
20 80.8824 17.3258
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
