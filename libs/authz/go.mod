module github.com/authstream/authstream/libs/authz

go 1.26

require github.com/authstream/authstream/libs/fault v0.0.0

replace github.com/authstream/authstream/libs/fault => ../fault
