package main

func release(n uint64)   {}
