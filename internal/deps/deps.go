package deps

import (
	_ "github.com/casbin/casbin/v2"
	_ "github.com/casbin/gorm-adapter/v3"
	_ "github.com/go-chi/chi/v5"
	_ "github.com/golang-jwt/jwt/v5"
	_ "golang.org/x/oauth2/clientcredentials"
	_ "gopkg.in/yaml.v3"
	_ "gorm.io/driver/mysql"
	_ "gorm.io/driver/postgres"
	_ "gorm.io/driver/sqlite"
	_ "gorm.io/gorm"
)
