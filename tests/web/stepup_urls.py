"""The project's URLs and a stand-in for the step-up page (named ``stepup``, under
/admin/), for tests of views that need a recent second factor, where the page itself is
not what is tested."""

from django.http import HttpResponse
from django.urls import path

from consortium.urls import handler400, handler404, handler500
from consortium.urls import urlpatterns as project

urlpatterns = [
    path("admin/stepup/", lambda request: HttpResponse("step up"), name="stepup"),
    *project,
]

__all__ = ["handler400", "handler404", "handler500", "urlpatterns"]
