set terminal pngcairo size 1000,640 font ',11'
set grid
set key outside right top
$d1 << EOD
1.38643 90.71 0
7.35984 92.37 0
EOD
$d2 << EOD
1.38643 91.29 0
7.35984 91 0
EOD
set output 'accuracy_vs_macs_a100.png'
set title 'Fashion-MNIST test accuracy vs MACs, Dirichlet alpha 100 (mean ± std over seeds)'
set xlabel 'forward MACs per image (millions)'
set ylabel 'test accuracy (%)'
plot $d1 using 1:2:3 with yerrorlines lw 2 pt 7 ps 1.3 lc rgb '#9400d3' title 'SuperFedNAS (fixed targets, n=1)', \
     $d2 using 1:2:3 with yerrorlines lw 2 pt 7 ps 1.3 lc rgb '#56b4e9' title 'iFedAvg (fixed targets, n=1)'
