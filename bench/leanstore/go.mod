module eventsink/bench/leanstore

go 1.22
