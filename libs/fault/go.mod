module github.com/authstream/authstream/libs/fault

go 1.26
