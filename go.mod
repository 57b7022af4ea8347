module github.com/berthsh/terraform-provider-berth

go 1.26.8
