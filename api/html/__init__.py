"""The HTML pages (search page, trial page, embeddable box), rendered from
``templates/`` by :mod:`api.html.page`."""
