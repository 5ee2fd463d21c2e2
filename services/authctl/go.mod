module github.com/authstream/authstream/services/authctl

go 1.26

require github.com/authstream/authstream/libs/config v0.0.0

replace github.com/authstream/authstream/libs/config => ../../libs/config
