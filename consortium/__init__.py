try:
    from consortium.celery import app as celery_app
except ImportError:  # pragma: no cover - the offline verifiers import this package's pure
    # modules (consortium.governance.voting) on machines that have PyNaCl and nothing else.
    celery_app = None

__all__ = ["celery_app"]
