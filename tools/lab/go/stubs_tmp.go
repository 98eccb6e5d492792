package main

func tophash(n uint64)   {}
func values(n uint64)    {}
func iterate(n uint64)   {}
func signals(n uint64)   {}
func release(n uint64)   {}
