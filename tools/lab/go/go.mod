module hmap/tools/lab/go

go 1.19
