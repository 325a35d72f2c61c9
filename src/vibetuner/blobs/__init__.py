"""The file feature: ``BlobStore`` on local disk or S3 and the ``/blobs`` routes.

``BlobsFeature`` (``vibetuner.blobs.routes``) adds it to an app.
"""
