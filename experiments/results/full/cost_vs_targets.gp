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
3 4.33399 0.793238
20 4.74087 0.793238
EOD
$c2 << EOD
1 3.00259 0.638184
2 6.00519 1.27637
3 9.00778 1.91455
4 12.0104 2.55274
5 15.013 3.19092
6 18.0156 3.8291
7 21.0182 4.46729
8 24.0207 5.10547
9 27.0233 5.74366
10 30.0259 6.38184
11 33.0285 7.02002
12 36.0311 7.65821
13 39.0337 8.29639
14 42.0363 8.93458
15 45.0389 9.57276
16 48.0415 10.2109
17 51.0441 10.8491
18 54.0467 11.4873
19 57.0493 12.1255
20 60.0519 12.7637
EOD
set output 'cost_vs_targets.png'
set key top left inside font ',10'
set multiplot layout 1,2 title 'Cost of serving N deployment targets (alpha 1)'
set xlabel 'number of targets N'
set ylabel 'training TMACs (clients; + server search)'
set yrange [0:*]
set xrange [0:21]
plot $c0 using 1:2 with lines lw 3 lc rgb '#9400d3' title 'SuperFedNAS: one training', $c1 using 1:2 with linespoints lw 2 dt 2 pt 5 ps 1.5 lc rgb '#009e73' title 'SuperFedNAS: training + search', $c2 using 1:2 with linespoints lw 2 pt 7 lc rgb '#56b4e9' title 'iFedAvg: N x mean run'
set ylabel 'GB communicated (down + up)'
plot $c0 using 1:3 with lines lw 3 lc rgb '#9400d3' notitle, $c2 using 1:3 with linespoints lw 2 pt 7 lc rgb '#56b4e9' notitle
unset multiplot
