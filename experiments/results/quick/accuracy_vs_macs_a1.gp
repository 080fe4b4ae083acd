set terminal pngcairo size 1000,640 font ',11'
set grid
set key outside right top
$d1 << EOD
1.38643 58.4933 4.7989
3.25267 60.86 7.38505
4.60886 61.42 6.15478
7.35984 59.9667 6.43017
EOD
$d2 << EOD
2.5992 62.0567 6.70709
2.69558 62.1133 6.7966
3.13997 62.4867 6.26079
EOD
$d3 << EOD
1.38643 69.0233 0.912433
3.25267 70.3133 2.00734
4.60886 71.87 1.3451
7.35984 70.0633 4.61313
EOD
$d4 << EOD
1.38643 58.63 0
3.25267 71.05 0
4.60886 71.66 0
7.35984 69.93 0
EOD
$d5 << EOD
1.38643 55.09 0
3.25267 62.19 0
4.60886 63.81 0
7.35984 63.23 0
EOD
$d6 << EOD
1.38643 45.7 0
3.25267 46.22 0
4.60886 46.66 0
7.35984 44.8 0
EOD
set output 'accuracy_vs_macs_a1.png'
set title 'Fashion-MNIST test accuracy vs MACs, Dirichlet alpha 1 (mean ± std over seeds)'
set xlabel 'forward MACs per image (millions)'
set ylabel 'test accuracy (%)'
plot $d1 using 1:2:3 with yerrorlines lw 2 pt 7 ps 1.3 lc rgb '#9400d3' title 'SuperFedNAS (fixed targets)', \
     $d2 using 1:2:3 with yerrorbars lw 2 pt 5 ps 1.3 lc rgb '#9400d3' title 'SuperFedNAS (searched winners)', \
     $d3 using 1:2:3 with yerrorlines lw 2 pt 7 ps 1.3 lc rgb '#56b4e9' title 'iFedAvg (fixed targets)', \
     $d4 using 1:2:3 with yerrorlines lw 2 pt 7 ps 1.3 lc rgb '#e69f00' title 'RandomUniform (fixed targets)', \
     $d5 using 1:2:3 with yerrorlines lw 2 pt 7 ps 1.3 lc rgb '#009e73' title 'Sandwich (fixed targets)', \
     $d6 using 1:2:3 with yerrorlines lw 2 pt 7 ps 1.3 lc rgb '#d55e00' title 'ConstantBeta (fixed targets)'
