"""Services shared by the features: email, audit, keys, links, image sizes, backend plugins."""
