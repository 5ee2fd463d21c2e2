module github.com/authstream/authstream/libs/config

go 1.26
