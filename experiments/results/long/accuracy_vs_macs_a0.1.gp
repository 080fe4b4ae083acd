set terminal pngcairo size 1000,640 font ',11'
set grid
set key outside right top
$d1 << EOD
1.38643 84.675 1.40714
7.35984 85.835 1.29401
EOD
$d2 << EOD
1.38643 87.595 0.233345
7.35984 87.705 0.318198
EOD
$d3 << EOD
1.38643 86.03 0.650538
7.35984 86.06 0.961665
EOD
$d4 << EOD
1.38643 87.33 0
7.35984 88.48 0
EOD
$d5 << EOD
1.38643 88.54 0
7.35984 88.77 0
EOD
$d6 << EOD
1.38643 86.71 0.39598
7.35984 87.385 0.162635
EOD
set output 'accuracy_vs_macs_a0.1.png'
set title 'Fashion-MNIST test accuracy vs MACs, Dirichlet alpha 0.1 (mean ± std over seeds)'
set xlabel 'forward MACs per image (millions)'
set ylabel 'test accuracy (%)'
plot $d1 using 1:2:3 with yerrorlines lw 2 pt 7 ps 1.3 lc rgb '#9400d3' title 'SuperFedNAS (fixed targets, n=2)', \
     $d2 using 1:2:3 with yerrorlines lw 2 pt 7 ps 1.3 lc rgb '#56b4e9' title 'iFedAvg (fixed targets, n=2)', \
     $d3 using 1:2:3 with yerrorlines lw 2 pt 7 ps 1.3 lc rgb '#e69f00' title 'SuperFedNAS-shortdecay (fixed targets, n=2)', \
     $d4 using 1:2:3 with yerrorlines lw 2 pt 7 ps 1.3 lc rgb '#009e73' title 'SuperFedNAS-480 (fixed targets, n=1)', \
     $d5 using 1:2:3 with yerrorlines lw 2 pt 7 ps 1.3 lc rgb '#d55e00' title 'iFedAvg-480 (fixed targets, n=1)', \
     $d6 using 1:2:3 with yerrorlines lw 2 pt 7 ps 1.3 lc rgb '#0072b2' title 'TrackingUniform (fixed targets, n=2)'
