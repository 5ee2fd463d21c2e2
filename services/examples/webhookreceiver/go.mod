module github.com/authstream/authstream/services/examples/webhookreceiver

go 1.26.0
