set terminal pngcairo size 1000,640 font ',11'
set grid
set key outside right top
$d1 << EOD
1.38643 89.7233 0.517333
7.35984 91.3667 0.37018
EOD
$d2 << EOD
2.42093 90.345 0.289914
3.17506 90.62 0.0707107
3.83688 90.775 0.289914
EOD
$d3 << EOD
1.38643 90.6 0.190788
7.35984 90.6933 0.172143
EOD
$d4 << EOD
2.42093 90.86 0.325269
3.17506 90.715 0.0494975
3.83688 90.59 0.127279
EOD
$d5 << EOD
1.38643 90.1467 0.442982
7.35984 91.1233 0.610928
EOD
$d6 << EOD
1.38643 89.6633 0.293995
7.35984 91.09 0.485077
EOD
$d7 << EOD
1.38643 89.8767 0.143643
7.35984 91.0067 0.307463
EOD
set output 'accuracy_vs_macs_a1.png'
set title 'Fashion-MNIST test accuracy vs MACs, Dirichlet alpha 1 (mean ± std over seeds)'
set xlabel 'forward MACs per image (millions)'
set ylabel 'test accuracy (%)'
plot $d1 using 1:2:3 with yerrorlines lw 2 pt 7 ps 1.3 lc rgb '#9400d3' title 'SuperFedNAS (fixed targets, n=3)', \
     $d2 using 1:2:3 with yerrorbars lw 2 pt 5 ps 1.3 lc rgb '#9400d3' title 'SuperFedNAS (searched winners, n=2)', \
     $d3 using 1:2:3 with yerrorlines lw 2 pt 7 ps 1.3 lc rgb '#56b4e9' title 'iFedAvg (fixed targets, n=3)', \
     $d4 using 1:2:3 with yerrorbars lw 2 pt 5 ps 1.3 lc rgb '#56b4e9' title 'iFedAvg (searched winners, n=2)', \
     $d5 using 1:2:3 with yerrorlines lw 2 pt 7 ps 1.3 lc rgb '#0072b2' title 'TrackingUniform (fixed targets, n=3)', \
     $d6 using 1:2:3 with yerrorlines lw 2 pt 7 ps 1.3 lc rgb '#cc79a7' title 'RandomUniform (fixed targets, n=3)', \
     $d7 using 1:2:3 with yerrorlines lw 2 pt 7 ps 1.3 lc rgb '#555555' title 'Sandwich (fixed targets, n=3)'
