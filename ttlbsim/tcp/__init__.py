"""Linux 6.1 TCP, as plain (sans-I/O) parts: RTT/RTO estimation (`rtt`), congestion control
(`congestion`), and the endpoint that wires them together."""
