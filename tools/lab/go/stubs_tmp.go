package main

func values(n uint64)    {}
func iterate(n uint64)   {}
func signals(n uint64)   {}
func release(n uint64)   {}
