# Time each message spends in each hop of a latency run, from a loopback capture (bench/run.sh).
# Input: tshark fields "time_epoch srcport dstport msg[,msg...]" of MQTT PUBLISHes; -v px=PROXY_PORT
# (0 for direct) -v bk=BROKER_PORT. A message is known by the start of its payload (mqttload puts a
# sequence number and the send time there). Hops: into the proxy -> out to the broker (c2s), into the
# broker -> out of it (broker), from the broker -> out of the proxy to the subscriber (s2c).
# Output: "<hop> <seconds>" per message and hop, for sorting and percentiles.
{
	n = split($4, m, ",")
	for (i = 1; i <= n; i++) {
		k = substr(m[i], 1, 40)
		if (px && $3 == px) role = "cin"
		else if ($3 == bk) role = "cout"
		else if ($2 == bk) role = "sin"
		else if (px && $2 == px) role = "sout"
		else continue
		if (!((k, role) in t)) t[k, role] = $1
		keys[k] = 1
	}
}
END {
	for (k in keys) {
		if ((k, "cout") in t && (k, "sin") in t) print "broker", t[k, "sin"] - t[k, "cout"]
		if (!px) continue
		if ((k, "cin") in t && (k, "cout") in t) print "c2s", t[k, "cout"] - t[k, "cin"]
		if ((k, "sin") in t && (k, "sout") in t) print "s2c", t[k, "sout"] - t[k, "sin"]
	}
}
