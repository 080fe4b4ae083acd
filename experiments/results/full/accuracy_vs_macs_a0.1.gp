set terminal pngcairo size 1000,640 font ',11'
set grid
set key outside right top
$d1 << EOD
1.38643 65.11 0
3.25267 70.07 0
4.60886 70.92 0
7.35984 76.64 0
EOD
$d2 << EOD
2.79216 75.58 0
3.17923 76.12 0
3.57667 76.56 0
EOD
$d3 << EOD
1.38643 81.71 0
3.25267 81.99 0
4.60886 81.61 0
7.35984 80.98 0
EOD
$d4 << EOD
1.38643 79.02 0
3.25267 79.6 0
4.60886 78.31 0
7.35984 79.15 0
EOD
set output 'accuracy_vs_macs_a0.1.png'
set title 'Fashion-MNIST test accuracy vs MACs, Dirichlet alpha 0.1 (mean ± std over seeds)'
set xlabel 'forward MACs per image (millions)'
set ylabel 'test accuracy (%)'
plot $d1 using 1:2:3 with yerrorlines lw 2 pt 7 ps 1.3 lc rgb '#9400d3' title 'SuperFedNAS (fixed targets, n=1)', \
     $d2 using 1:2:3 with yerrorbars lw 2 pt 5 ps 1.3 lc rgb '#9400d3' title 'SuperFedNAS (searched winners, n=1)', \
     $d3 using 1:2:3 with yerrorlines lw 2 pt 7 ps 1.3 lc rgb '#56b4e9' title 'iFedAvg (fixed targets, n=1)', \
     $d4 using 1:2:3 with yerrorlines lw 2 pt 7 ps 1.3 lc rgb '#e69f00' title 'SuperFedNAS-4x (fixed targets, n=1)'
