FROM python:3.13-slim
ENV SCRAPY_VERSION=2.11.2
RUN pip install --no-cache-dir git+https://github.com/scrapy/scrapy.git@$SCRAPY_VERSION git+https://github.com/scrapy/scrapyd-client.git
RUN if [ "$(uname -m)" = x86_64 ]; then TF_POSTFIX="-cpu"; else TF_POSTFIX=""; fi && pip install --no-cache-dir "tensorflow${TF_POSTFIX}"
RUN pip install --no-cache-dir "numpy==${NUMPY_VERSION}" $UNKNOWN_REQUIREMENTS
USER app
