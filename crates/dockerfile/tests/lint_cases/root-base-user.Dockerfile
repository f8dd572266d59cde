FROM example/runner:1.0
CMD ["run"]
