set terminal pngcairo size 1000,640 font ',11'
set grid
set key outside right top
$d1 << EOD
1.38643 84.19 0
3.25267 85.85 0
4.60886 86.67 0
7.35984 87.55 0
EOD
$d2 << EOD
2.84141 86.08 0
4.14317 86.87 0
4.31251 87.06 0
EOD
$d3 << EOD
1.38643 89.23 0
3.25267 89.15 0
4.60886 89.1 0
7.35984 89.08 0
EOD
$d4 << EOD
1.38643 88.71 0
3.25267 89.76 0
4.60886 90.04 0
7.35984 90.7 0
EOD
set output 'accuracy_vs_macs_a100.png'
set title 'Fashion-MNIST test accuracy vs MACs, Dirichlet alpha 100 (mean ± std over seeds)'
set xlabel 'forward MACs per image (millions)'
set ylabel 'test accuracy (%)'
plot $d1 using 1:2:3 with yerrorlines lw 2 pt 7 ps 1.3 lc rgb '#9400d3' title 'SuperFedNAS (fixed targets, n=1)', \
     $d2 using 1:2:3 with yerrorbars lw 2 pt 5 ps 1.3 lc rgb '#9400d3' title 'SuperFedNAS (searched winners, n=1)', \
     $d3 using 1:2:3 with yerrorlines lw 2 pt 7 ps 1.3 lc rgb '#56b4e9' title 'iFedAvg (fixed targets, n=1)', \
     $d4 using 1:2:3 with yerrorlines lw 2 pt 7 ps 1.3 lc rgb '#e69f00' title 'SuperFedNAS-4x (fixed targets, n=1)'
