module hmapbenchsync

go 1.19
