module github.com/authstream/authstream/libs/events

go 1.26
