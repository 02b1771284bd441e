module github.com/warrenhq/warren/e2e

go 1.26.0
