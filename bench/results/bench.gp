set terminal pngcairo size 1800,560 font "sans,11"
set output "bench.png"
set multiplot layout 1,3 title "pcn-iptables vs iptables (64-byte packets; rate panels: last rule matches)"
set logscale x
set xlabel "rules in the chain"
set xrange [0.8:25000]
set grid
set key bottom right
set title "Per-packet cost, BPF\\_PROG\\_TEST\\_RUN (udp)"
set ylabel "ns/packet"
set yrange [0:*]
set key top left
set offsets 0, 0, graph 0.4, 0
plot "cost.dat" u 1:2 w lp lw 2 t "pcn: first rule", \
     "" u 1:3 w lp lw 2 t "pcn: last rule", \
     "" u 1:4 w lp lw 2 t "pcn: no rule (policy)", \
     "" u 1:5 w lp lw 2 dt 2 t "pcn classifier alone: last rule", \
     "" u 1:6 w l lw 2 dt 3 lc rgb "black" t "bare XDP drop"
set ylabel "kpps"
set key bottom left
set offsets 0, 0, 0, 0
set logscale y
set yrange [*:*]
set title "INPUT chain: packet rate over veth"
plot "rate-INPUT.dat" u 1:2 w lp lw 2 t "pcn-iptables", \
     "" u 1:3 w lp lw 2 t "iptables-legacy", \
     "" u 1:4 w lp lw 2 t "iptables-nft", \
     "" u 1:5 w l lw 2 dt 3 lc rgb "black" t "bare XDP drop"
set title "FORWARD chain: packet rate over veth"
plot "rate-FORWARD.dat" u 1:2 w lp lw 2 t "pcn-iptables", \
     "" u 1:3 w lp lw 2 t "iptables-legacy", \
     "" u 1:4 w lp lw 2 t "iptables-nft", \
     "" u 1:5 w l lw 2 dt 3 lc rgb "black" t "bare XDP drop"
unset multiplot
