module github.com/authstream/authstream/tools/arch

go 1.26.0
