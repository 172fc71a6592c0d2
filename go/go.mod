module github.com/peat-mesh/peat-mesh/go

go 1.24
