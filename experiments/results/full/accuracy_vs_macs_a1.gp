set terminal pngcairo size 1000,640 font ',11'
set grid
set key outside right top
$d1 << EOD
1.38643 82.8733 0.934897
3.25267 84.34 0.837198
4.60886 84.7533 0.498029
7.35984 85.7167 1.11164
EOD
$d2 << EOD
2.72554 84.67 0.640234
3.84806 85.3567 0.962514
4.77658 85.6467 0.646323
EOD
$d3 << EOD
1.38643 88.0233 0.739008
3.25267 88.64 0
4.60886 88.17 0
7.35984 87.7767 0.463717
EOD
$d4 << EOD
2.72554 87.6933 0.586884
3.84806 87.99 0.365103
4.77658 87.8567 0.430039
EOD
$d5 << EOD
1.38643 88.33 0.497293
3.25267 89.1567 0.40464
4.60886 89.3133 0.418848
7.35984 90.1467 0.255016
EOD
$d6 << EOD
1.38643 90.72 0
7.35984 90.62 0
EOD
$d7 << EOD
1.38643 83.48 0.212132
3.25267 86.14 1.23037
4.60886 86.205 0.841457
7.35984 85.555 1.1243
EOD
$d8 << EOD
1.38643 81.55 2.29103
3.25267 84.595 1.91626
4.60886 84.215 2.55266
7.35984 85.415 1.42128
EOD
$d9 << EOD
1.38643 70.04 0.66468
3.25267 74.03 5.34573
4.60886 76.135 5.28209
7.35984 79.93 2.70115
EOD
$d10 << EOD
1.38643 84.82 0.551543
3.25267 85.735 0.968736
4.60886 85.605 0.346482
7.35984 86.795 0.233345
EOD
$d11 << EOD
1.38643 84.27 0.268701
3.25267 85.175 1.74655
4.60886 85.41 1.68291
7.35984 85.925 1.50614
EOD
$d12 << EOD
1.38643 76.71 1.32936
3.25267 80.055 0.912168
4.60886 80.975 0.417193
7.35984 81.815 0.487904
EOD
set output 'accuracy_vs_macs_a1.png'
set title 'Fashion-MNIST test accuracy vs MACs, Dirichlet alpha 1 (mean ± std over seeds)'
set xlabel 'forward MACs per image (millions)'
set ylabel 'test accuracy (%)'
plot $d1 using 1:2:3 with yerrorlines lw 2 pt 7 ps 1.3 lc rgb '#9400d3' title 'SuperFedNAS (fixed targets, n=3)', \
     $d2 using 1:2:3 with yerrorbars lw 2 pt 5 ps 1.3 lc rgb '#9400d3' title 'SuperFedNAS (searched winners, n=3)', \
     $d3 using 1:2:3 with yerrorlines lw 2 pt 7 ps 1.3 lc rgb '#56b4e9' title 'iFedAvg (fixed targets, n=1-3)', \
     $d4 using 1:2:3 with yerrorbars lw 2 pt 5 ps 1.3 lc rgb '#56b4e9' title 'iFedAvg (searched winners, n=3)', \
     $d5 using 1:2:3 with yerrorlines lw 2 pt 7 ps 1.3 lc rgb '#e69f00' title 'SuperFedNAS-4x (fixed targets, n=3)', \
     $d6 using 1:2:3 with yerrorlines lw 2 pt 7 ps 1.3 lc rgb '#009e73' title 'iFedAvg-4x (fixed targets, n=1)', \
     $d7 using 1:2:3 with yerrorlines lw 2 pt 7 ps 1.3 lc rgb '#d55e00' title 'RandomUniform (fixed targets, n=2)', \
     $d8 using 1:2:3 with yerrorlines lw 2 pt 7 ps 1.3 lc rgb '#0072b2' title 'Sandwich (fixed targets, n=2)', \
     $d9 using 1:2:3 with yerrorlines lw 2 pt 7 ps 1.3 lc rgb '#cc79a7' title 'ConstantBeta (fixed targets, n=2)', \
     $d10 using 1:2:3 with yerrorlines lw 2 pt 7 ps 1.3 lc rgb '#555555' title 'TrackingUniform (fixed targets, n=2)', \
     $d11 using 1:2:3 with yerrorlines lw 2 pt 7 ps 1.3 lc rgb '#999999' title 'SuperFedNAS-shortdecay (fixed targets, n=2)', \
     $d12 using 1:2:3 with yerrorlines lw 2 pt 7 ps 1.3 lc rgb '#9400d3' title 'SuperFedNAS-frozenBN (fixed targets, n=2)'
