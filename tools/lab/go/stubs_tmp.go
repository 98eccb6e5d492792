package main

func iterate(n uint64)   {}
func signals(n uint64)   {}
func release(n uint64)   {}
