class FakeElasticsearch:  # placeholder
    url = ""

    def __enter__(self):
        return self

    def __exit__(self, *a):
        pass
