module hmapbenchpool

go 1.19
