module github.com/authstream/authstream/libs/auditlog

go 1.26.0

require (
	github.com/authstream/authstream/libs/events v0.0.0
	golang.org/x/mod v0.43.0
)

replace github.com/authstream/authstream/libs/events => ../events
