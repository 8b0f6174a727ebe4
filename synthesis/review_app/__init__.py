"""The built-in review app (`soaes review serve`): a small aiohttp web app on the review store."""
